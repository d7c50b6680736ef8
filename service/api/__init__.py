"""The HTTP API (FastAPI): ``app`` builds the application, ``routes/`` holds one router per resource,
``schemas`` the request and response shapes, ``problems`` RFC 9457 errors, ``pagination`` cursors."""
