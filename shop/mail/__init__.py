"""Email: Jinja2 templates, rendering, and the SMTP sender."""
