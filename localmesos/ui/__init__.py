"""The live page that every master serves at `/` (its static files are in `static/`), and
`localmesos ui` (proxy.py), which serves it in front of any Mesos master."""
