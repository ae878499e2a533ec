"""What each request used and cost, recorded off the request path; see docs/metering.md.

usage (Usage, reading usage), stream (StreamMeter), tokens (TokenCounter), prices (PriceTable),
sink (LogSink), redact (Redactor), metrics and series (Metrics), jsonlog (JsonFormatter).
Nothing is imported here: importing the package does no work.
"""
