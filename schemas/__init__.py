"""Input-event validation (CONTRACT.md section 1), dead letters (section 5) and their JSON Schemas."""

from schemas.dead_letters import dead_letter
from schemas.parse import REASONS, parse_event
from schemas.timestamps import format_ts, parse_ts

__all__ = ["REASONS", "dead_letter", "format_ts", "parse_event", "parse_ts"]
