"""Input-event validation (CONTRACT.md section 1), dead letters (section 5) and their JSON Schemas."""

from schemas.events import REASONS, dead_letter, format_ts, parse_event, parse_ts

__all__ = ["REASONS", "dead_letter", "format_ts", "parse_event", "parse_ts"]
