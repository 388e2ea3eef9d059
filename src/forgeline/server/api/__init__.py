"""The team server's REST API under ``/api/forgeline/v1/``, one router per aggregate."""
