"""Run tracking without a server: runs live in the app's bucket."""
