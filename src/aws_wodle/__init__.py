"""aws-wodle: collects CloudWatch Logs for the manager's aws-s3 wodle configuration."""

__version__ = "0.1.0"
