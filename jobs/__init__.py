"""The example job that every step of the tutorial distributes (see jobs/bikeshare.py)."""
