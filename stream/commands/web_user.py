"""`kpistream web-user`: make an entry of the web users file (a new token, or a password's hash)."""

from __future__ import annotations

import argparse
import getpass
import sys

from agents.web_auth import USER_ROLES, hash_password, new_token, token_digest


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "web-user",
        help="print a [[users]] entry for the web users file (a new token or a password hash)",
        description="Print a [[users]] entry for web_auth_file (docs/security.md). By default a new "
        "random token is made: it is printed once, on standard error, and the file keeps only its "
        "sha256. With --password the password is read from the terminal (or one line of standard "
        "input) and stored as a PBKDF2 hash.",
    )
    p.add_argument("name", help="the user's name (shown in refusals and logs)")
    p.add_argument("--role", choices=USER_ROLES, default="viewer", help="viewer (default), ingest or admin")
    p.add_argument("--password", action="store_true", help="a password user (basic auth) instead of a token")
    p.set_defaults(func=run)


def entry(name: str, role: str, *, token: str | None = None, password: str | None = None) -> str:
    """The TOML text of one users-file entry."""
    lines = ["[[users]]", f"name = {_toml_str(name)}", f"role = {_toml_str(role)}"]
    if token is not None:
        lines.append(f'token_sha256 = "{token_digest(token)}"')
    if password is not None:
        lines.append(f'password_hash = "{hash_password(password)}"')
    return "\n".join(lines) + "\n"


def _toml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run(args: argparse.Namespace) -> int:
    if ":" in args.name or not args.name:
        print("kpistream web-user: the name must be non-empty and without ':'", file=sys.stderr)
        return 2
    if args.password:
        if sys.stdin.isatty():
            password = getpass.getpass("password: ")
            if getpass.getpass("again: ") != password:
                print("kpistream web-user: the passwords differ", file=sys.stderr)
                return 2
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        if len(password) < 8:
            print("kpistream web-user: the password must have at least 8 characters", file=sys.stderr)
            return 2
        sys.stdout.write(entry(args.name, args.role, password=password))
        return 0
    token = new_token()
    print(f"token for {args.name} (shown once, keep it secret): {token}", file=sys.stderr)
    sys.stdout.write(entry(args.name, args.role, token=token))
    return 0
