"""A small adapter that gives pymesos the parser interface it expects, over h11.

pymesos imports exactly one name, ``http_parser.http.HttpParser``, and uses it to read
the response to its SUBSCRIBE request: the status line, the headers, then a chunked
body that carries the RecordIO event stream. Its own unit tests also parse the requests it
writes. See ``http_parser.http`` for the methods.
"""

__version__ = "0.9.0+h11"
