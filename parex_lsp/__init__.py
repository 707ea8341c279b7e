"""parex: run many coding agents and shell tasks concurrently, from an editor or a terminal."""

__version__ = "0.1.0"
