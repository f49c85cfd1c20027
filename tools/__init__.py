"""The project's own tooling: listing sync, the test harness, screenshots and set-up checks."""
