"""The command line: the same code path in-process, or the RPC with --server."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

from google.protobuf import json_format

from proxyvote import __version__
from proxyvote.cli import classify as classify_command
from proxyvote.cli import meetings
from proxyvote.core.model import RecommendCommand
from proxyvote.errors import PolicyInvalid, ProxyvoteError
from proxyvote.settings import Settings
from proxyvote.settings import help_text as settings_help
from proxyvote.v1 import enums_pb2
from proxyvote.wire import convert

FORMATS = ("table", "json", "md")


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class CliError(Exception):
    """A one-line error for the user; exit status 2."""


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"cannot read {path}: not UTF-8 text") from exc


def _settings(args) -> Settings:
    return args.settings


def _recommender(args):
    from proxyvote.app.files import load_recommender

    return load_recommender(_settings(args).policy_dir)


def _evidence(paths) -> tuple:
    from proxyvote.app.files import load_evidence

    for path in paths:
        _read(path)  # a missing or unreadable file is a one-line error
    return load_evidence(paths)


def _command(args) -> RecommendCommand:
    """The files named on the command line, converted once into the core's command."""
    meeting = convert.meeting_from_json(_read(args.meeting), field=f"meeting ({args.meeting})")
    paths = list(args.evidence or ())
    if not args.server:
        # In-process, the shared evidence set stands in for the server's store (which loads the same files).
        from proxyvote.app.files import evidence_files

        paths += [str(p) for p in evidence_files(_settings(args).evidence_dir)]
    as_of = convert.parse_as_of(args.as_of or "", "--as-of")
    return RecommendCommand(meeting, args.policy[0], as_of, _evidence(paths))


def _policies(args) -> tuple[str, ...]:
    """The --policy values in order; one named twice is a one-line error."""
    policies = tuple(args.policy)
    for i, policy in enumerate(policies):
        if policy.strip() in (p.strip() for p in policies[:i]):
            raise CliError(f"--policy {policy.strip()} is given twice")
    return policies


def _decide_many(args, command: RecommendCommand, policies: tuple[str, ...]):
    """In-process: the meeting under each policy in one pass (each item classified once)."""
    recommender = _recommender(args)
    resolved, seen = [], {}
    for policy in policies:
        found = recommender.policy(policy, field=f"--policy {policy}")
        ref = (found.id, found.version)
        if ref in seen:
            raise CliError(
                f"--policy {policy} names {found.id}@{found.version} again (as --policy {seen[ref]})"
            )
        seen[ref] = policy
        resolved.append(found)
    return recommender.decide_many(
        command.meeting, tuple(resolved), command.as_of or _today(), command.evidence
    )


def _request_message(command: RecommendCommand):
    from proxyvote.v1 import recommendation_service_pb2 as rs

    return rs.RecommendRequest(
        meeting=convert.meeting_to_proto(command.meeting),
        policy=command.policy,
        as_of=command.as_of.isoformat() if command.as_of else "",
        evidence=[convert.evidence_to_proto(r) for r in command.evidence],
    )


def _channel(args, address: str):
    from proxyvote.api.transport import ClientTransport

    return ClientTransport.from_settings(_settings(args)).channel(address)


def _auth(args) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying the API key (--api-key or PROXYVOTE_API_KEY)."""
    key = getattr(args, "api_key", None) or _settings(args).api_key
    if not key:
        raise CliError(
            "calling a server needs an API key: --api-key or PROXYVOTE_API_KEY (proxyvote tenant create)"
        )
    return (("authorization", f"Bearer {key}"),)


def cmd_recommend(args) -> int:
    command = _command(args)
    policies = _policies(args)
    if len(policies) > 1:
        return _recommend_policies(args, command, policies)
    if args.format == "md":
        sys.stdout.write(_memo(args, command).decode("utf-8"))
        return 0
    if args.server:
        from proxyvote.v1 import recommendation_service_pb2_grpc as rs_grpc

        with _channel(args, args.server) as channel:
            response = rs_grpc.RecommendationServiceStub(channel).Recommend(
                _request_message(command), timeout=60, metadata=_auth(args)
            )
    else:
        response = convert.decision_to_proto(_recommender(args).decide(command, _today()))
    if response.decision_id:
        # Not part of the decision: kept out of stdout so in-process and --server print the same.
        print(f"stored as decision {response.decision_id}", file=sys.stderr)
        response.ClearField("decision_id")
    print(to_json(response) if args.format == "json" else table(response))
    return 0


def _recommend_policies(args, command: RecommendCommand, policies: tuple[str, ...]) -> int:
    """Several --policy: one pass (RecommendPolicies with --server), one column per policy."""
    from proxyvote.v1 import recommendation_service_pb2 as rs

    if args.format == "md":
        sys.stdout.write(_memo(args, command, "md", "perspectives", policies).decode("utf-8"))
        return 0
    if args.server:
        from proxyvote.v1 import recommendation_service_pb2_grpc as rs_grpc

        single = _request_message(command)
        request = rs.RecommendPoliciesRequest(
            meeting=single.meeting, policies=policies, as_of=single.as_of, evidence=single.evidence
        )
        with _channel(args, args.server) as channel:
            reply = rs_grpc.RecommendationServiceStub(channel).RecommendPolicies(
                request, timeout=60, metadata=_auth(args)
            )
    else:
        decisions = _decide_many(args, command, policies)
        reply = rs.RecommendPoliciesResponse(responses=[convert.decision_to_proto(d) for d in decisions])
    ids = [r.decision_id for r in reply.responses if r.decision_id]
    if ids:
        print(f"stored as decisions {', '.join(ids)}", file=sys.stderr)
        for r in reply.responses:
            r.ClearField("decision_id")
    print(to_json(reply) if args.format == "json" else policies_table(reply.responses))
    return 0


def to_json(message) -> str:
    return json_format.MessageToJson(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        sort_keys=True,
        indent=2,
    )


def table(response) -> str:
    vote = enums_pb2.Vote.Name
    rows = [("item", "vote", "board", "against mgmt", "review", "rule", "topic", "categories")]
    for r in response.recommendations:
        rows.append(
            (
                r.item_id,
                vote(r.vote),
                vote(r.board_recommendation),
                "yes" if r.against_management else "",
                "yes" if r.needs_review else "",
                r.rule_id,
                r.topic or "-",
                ",".join(enums_pb2.NpxCategory.Name(c) for c in r.npx_categories),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        f"{response.meeting_id}  policy {response.policy.id}@{response.policy.version} "
        f"({response.policy.content_hash[:12]})  as of {response.as_of}"
    ]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip())
    return "\n".join(lines)


def policies_table(responses) -> str:
    """One row per item, one column per policy: its vote, ! against management, ? for review."""
    vote = enums_pb2.Vote.Name
    first = responses[0]
    rows = [("item", "board", *(f"{r.policy.id}@{r.policy.version}" for r in responses))]
    for n, base in enumerate(first.recommendations):
        cells = []
        for response in responses:
            r = response.recommendations[n]
            marks = ("!" if r.against_management else "") + ("?" if r.needs_review else "")
            cells.append(f"{vote(r.vote)} {marks}".rstrip())
        rows.append((base.item_id, vote(base.board_recommendation), *cells))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"{first.meeting_id}  {len(responses)} policies  as of {first.as_of}"]
    lines += [f"  {r.policy.id}@{r.policy.version} ({r.policy.content_hash[:12]})" for r in responses]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    lines.append("! against management  ? needs review")
    return "\n".join(lines)


def _memo(
    args,
    command: RecommendCommand,
    memo_format: str = "md",
    variant: str = "full",
    policies: tuple[str, ...] = (),
) -> bytes:
    """The memo, rendered by the server with --server, else in-process; the perspectives
    variant under ``policies`` (one column each)."""
    from proxyvote.memo.render import FORMATS as MEMO_FORMATS
    from proxyvote.memo.render import VARIANTS as MEMO_VARIANTS

    perspectives = variant == "perspectives"
    if args.server:
        from proxyvote.v1 import memo_service_pb2, memo_service_pb2_grpc

        request = _request_message(command)
        with _channel(args, args.server) as channel:
            response = memo_service_pb2_grpc.MemoServiceStub(channel).RenderMemo(
                memo_service_pb2.RenderMemoRequest(
                    meeting=request.meeting,
                    policy="" if perspectives else request.policy,
                    policies=policies if perspectives else (),
                    as_of=request.as_of,
                    evidence=request.evidence,
                    format=MEMO_FORMATS[memo_format],
                    variant=MEMO_VARIANTS[variant],
                ),
                timeout=60,
                metadata=_auth(args),
            )
        return response.content
    from proxyvote.app.files import load_templates
    from proxyvote.memo.render import MemoRenderer

    renderer = MemoRenderer(load_templates(_settings(args).template_dir))
    if perspectives:
        decisions = _decide_many(args, command, policies)
        return renderer.render_perspectives(decisions, MEMO_FORMATS[memo_format])[0]
    decision = _recommender(args).decide(command, _today())
    return renderer.render(decision, MEMO_FORMATS[memo_format], variant=MEMO_VARIANTS[variant])[0]


def _write_stdout(content: bytes) -> None:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stream (e.g. captured): the text formats only reach here
        sys.stdout.write(content.decode("utf-8"))
        return
    buffer.write(content)
    buffer.flush()


def cmd_memo(args) -> int:
    if args.format == "pdf" and not args.output and sys.stdout.isatty():
        raise CliError(
            "a PDF is not for a terminal: write it to a file with --output FILE (or redirect stdout)"
        )
    policies = _policies(args)
    if len(policies) > 1 and args.variant != "perspectives":
        raise CliError("several --policy make one memo with --variant perspectives (a column per policy)")
    content = _memo(args, _command(args), args.format, args.variant, policies)
    if args.output:
        try:
            Path(args.output).write_bytes(content)
        except OSError as exc:
            raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    else:
        _write_stdout(content)
    return 0


def cmd_serve(args) -> int:
    from proxyvote.api.observability import configure_logging
    from proxyvote.api.server import serve
    from proxyvote.api.workers import supervise, worker_count

    settings = _settings(args)
    configure_logging(settings.log_format)  # the supervisor's lines as its workers' (json or text)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    count = worker_count(settings)
    if count > 1 and not args.reuse_port:
        return supervise(settings, count)
    serve(settings, reuse_port=args.reuse_port)
    return 0


def cmd_db(args) -> int:
    from proxyvote.store import open_store
    from proxyvote.store.schema import current_revision, downgrade, head_revision, upgrade

    url = _settings(args).database_url
    if args.db_command == "upgrade":
        if url.startswith("sqlite"):
            open_store(url).close()  # creates the folder of a SQLite file
        upgrade(url, args.revision)
    elif args.db_command == "downgrade":
        downgrade(url, args.revision)
    store = open_store(url)
    try:
        print(f"database at {current_revision(store.engine) or 'nothing'} (head {head_revision()})")
    finally:
        store.close()
    return 0


def cmd_evidence_import(args) -> int:
    """Into the shared set (the database directly), or with --server into the caller's own."""
    if args.server:
        from proxyvote.v1 import evidence_service_pb2, evidence_service_pb2_grpc

        records = [convert.evidence_to_proto(r) for r in _evidence(args.files)]
        with _channel(args, args.server) as channel:
            reply = evidence_service_pb2_grpc.EvidenceServiceStub(channel).ImportEvidence(
                evidence_service_pb2.ImportEvidenceRequest(records=records), timeout=60, metadata=_auth(args)
            )
        print(f"imported {reply.imported}, unchanged {reply.unchanged}")
        return 0
    from proxyvote.app.wiring import build_app
    from proxyvote.store import SHARED

    app = build_app(_settings(args))
    try:
        for path in args.files:
            added, unchanged = app.evidence.import_records(SHARED, _evidence([path]))
            print(f"{path}: imported {added}, unchanged {unchanged} (shared set)")
    finally:
        app.close()
    return 0


def cmd_tenant_create(args) -> int:
    from proxyvote.app.wiring import build_app

    app = build_app(_settings(args))
    try:
        tenant_id, key = app.store.tenants.create(args.name)
    finally:
        app.close()
    print(f"tenant {args.name} ({tenant_id})")
    print(f"API key, shown once: {key}")
    return 0


def cmd_policy_list(args) -> int:
    if args.server:
        from proxyvote.v1 import policy_service_pb2, policy_service_pb2_grpc

        with _channel(args, args.server) as channel:
            stub = policy_service_pb2_grpc.PolicyServiceStub(channel)
            policies, token = [], ""
            while True:
                page = stub.ListPolicies(
                    policy_service_pb2.ListPoliciesRequest(page_token=token), timeout=30, metadata=_auth(args)
                )
                policies.extend((p.id, p.version, p.content_hash, p.title, p.extends) for p in page.policies)
                token = page.next_page_token
                if not token:
                    break
    else:
        library = _recommender(args).policies
        policies = [(p.id, p.version, p.content_hash, p.title, p.extends) for p in library.page(1000, "")[0]]
    for pid, version, digest, title, extends in policies:
        parent = f"  extends {extends}" if extends else ""
        print(f"{pid}@{version}  {digest[:12]}  {title}{parent}")
    return 0


def cmd_policy_validate(args) -> int:
    recommender = _recommender(args)
    status = 0
    for path in args.files:
        try:
            policy = recommender.policies.check(_read(path), path, recommender.taxonomy)
        except PolicyInvalid as exc:
            status = 1
            for problem in exc.problems:
                print(problem)
            continue
        print(f"{path}: ok ({policy.id}@{policy.version}, sha256 {policy.content_hash[:12]})")
    return status


def cmd_policy_test(args) -> int:
    from proxyvote.app.policy_tests import as_json, describe, run_suite

    recommender = _recommender(args)
    files = [Path(f) for f in args.files]
    if not files:
        files = sorted((_settings(args).policy_dir / "tests").glob("*.yaml"))
    if not files:
        raise CliError("no policy test files found")
    try:
        result = run_suite(recommender, files)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from exc
    print(as_json(result) if args.json else describe(result))
    return 0 if result.passed else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="proxyvote", description=__doc__)
    p.add_argument("--version", action="version", version=f"proxyvote {__version__}")
    p.add_argument("--policy-dir", help="policy folder (default: PROXYVOTE_POLICY_DIR or the bundled one)")
    sub = p.add_subparsers(dest="command", required=True)

    def meeting_args(sp):
        sp.add_argument(
            "--policy",
            required=True,
            action="append",
            help="policy id or id@version; repeat it to decide under several policies at once",
        )
        sp.add_argument("--meeting", required=True, help="meeting JSON file (data-format.md)")
        sp.add_argument("--as-of", help="YYYY-MM-DD; evidence published later is ignored (default: today)")
        sp.add_argument("--evidence", action="append", help="evidence JSON file; repeatable")
        sp.add_argument("--server", help="call the service at HOST:PORT instead of deciding in-process")
        sp.add_argument("--api-key", help="with --server: the API key (default: PROXYVOTE_API_KEY)")

    sp = sub.add_parser("recommend", help="decide every item of a meeting")
    meeting_args(sp)
    sp.add_argument("--format", choices=FORMATS, default="table")
    sp.set_defaults(func=cmd_recommend)

    sp = sub.add_parser("memo", help="write the rationale memo (Markdown, HTML or PDF)")
    meeting_args(sp)
    sp.add_argument("--format", choices=("md", "html", "pdf"), default="md", help="default: md (Markdown)")
    sp.add_argument(
        "--variant",
        choices=("full", "disclosure", "perspectives"),
        default="full",
        help="full: the internal memo (default); disclosure: the short public one; "
        "perspectives: one column per --policy",
    )
    sp.add_argument("--output", "-o", help="file to write (default: standard output)")
    sp.set_defaults(func=cmd_memo)

    classify_command.add_parser(sub)
    sp = sub.add_parser(
        "serve",
        help="serve the gRPC API",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sp.add_argument("--addr", help="HOST:PORT (default: PROXYVOTE_ADDR or 127.0.0.1:50051)")
    sp.add_argument("--database-url", help="default: DATABASE_URL or SQLite under ./var/")
    sp.add_argument(
        "--workers",
        type=int,
        help="server processes on one port (default: PROXYVOTE_WORKERS or one per core)",
    )
    sp.add_argument(
        "--metrics-addr", help="Prometheus metrics on HOST:PORT (default: PROXYVOTE_METRICS_ADDR)"
    )
    sp.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # set by the supervisor
    sp.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="the database schema (Alembic migrations)")
    dsub = db.add_subparsers(dest="db_command", required=True)
    for name, default, text in (
        ("upgrade", "head", "apply migrations up to REVISION (default: head)"),
        ("downgrade", "base", "revert migrations down to REVISION (default: base, an empty database)"),
        ("current", "", "show the database's revision"),
    ):
        sp = dsub.add_parser(name, help=text)
        if default:
            sp.add_argument("revision", nargs="?", default=default)
        sp.add_argument("--database-url", help="default: DATABASE_URL or SQLite under ./var/")
        sp.set_defaults(func=cmd_db)

    tenant = sub.add_parser("tenant", help="tenants and their API keys")
    tsub = tenant.add_subparsers(dest="tenant_command", required=True)
    sp = tsub.add_parser("create", help="a new tenant; prints its API key once")
    sp.add_argument("name")
    sp.add_argument("--database-url", help="default: DATABASE_URL or SQLite under ./var/")
    sp.set_defaults(func=cmd_tenant_create)

    evidence = sub.add_parser("evidence", help="dated evidence records")
    esub = evidence.add_subparsers(dest="evidence_command", required=True)
    sp = esub.add_parser(
        "import", help="import evidence files (data-format.md) into the shared set, or yours"
    )
    sp.add_argument("files", nargs="+")
    sp.add_argument("--database-url", help="default: DATABASE_URL or SQLite under ./var/")
    sp.add_argument("--server", help="import through the service at HOST:PORT, as your own records")
    sp.add_argument("--api-key", help="with --server: the API key (default: PROXYVOTE_API_KEY)")
    sp.set_defaults(func=cmd_evidence_import)

    meetings.add_parser(sub)
    meetings.add_import_parser(sub)

    policy = sub.add_parser("policy", help="list, validate and test policies")
    psub = policy.add_subparsers(dest="policy_command", required=True)
    sp = psub.add_parser("list", help="every policy version")
    sp.add_argument("--server", help="ask the service at HOST:PORT")
    sp.add_argument("--api-key", help="with --server: the API key (default: PROXYVOTE_API_KEY)")
    sp.set_defaults(func=cmd_policy_list)
    sp = psub.add_parser("validate", help="check policy files; every problem with its line")
    sp.add_argument("files", nargs="+")
    sp.set_defaults(func=cmd_policy_validate)
    sp = psub.add_parser("test", help="run policy tests (default: the policy folder's tests/)")
    sp.add_argument("files", nargs="*")
    sp.add_argument("--json", action="store_true", help="machine-readable results")
    sp.set_defaults(func=cmd_policy_test)
    from proxyvote.cli import backtest, exports, synth, voting_choice  # commands in their own modules

    backtest.add_parser(sub)
    synth.add_parser(sub)
    voting_choice.add_parser(sub)
    exports.add_parser(sub)
    return p


def _rpc_error_line(exc) -> str:
    from proxyvote.cli.rpc_errors import error_line

    return error_line(exc)


def main(argv: list[str] | None = None, environ=None) -> int:
    args = parser().parse_args(argv)
    try:
        args.settings = Settings.load(
            environ,
            addr=getattr(args, "addr", None),
            database_url=getattr(args, "database_url", None),
            workers=getattr(args, "workers", None),
            metrics_addr=getattr(args, "metrics_addr", None),
            policy_dir=args.policy_dir,
        )
        return args.func(args)
    except (CliError, ProxyvoteError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        import grpc

        if isinstance(exc, grpc.RpcError):
            print(_rpc_error_line(exc), file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
