"""`automl models ...`, `automl jobs` and `automl logs prune`: the registry, the jobs and the
monitoring logs from the command line."""

from __future__ import annotations

import json
import sys


def _store():
    from store import Store

    return Store()


def _json(obj) -> None:
    print(json.dumps(obj, default=str))


def version_dict(version, documents: dict | None = None) -> dict:
    out = {
        "ref": version.ref,
        "name": version.name,
        "version": version.version,
        "created_at": version.created_at,
        "task": version.task,
        "metric": version.metric_name,
        "cv_score": version.cv_score,
        "aliases": list(version.aliases),
        "description": version.description,
        "metrics": version.metrics,
        "params": version.params,
        "input_schema": version.input_schema,
        "lineage": version.lineage,
        "artifact": {"sha256": version.artifact.sha256, "size": version.artifact.size},
        "parent_version_id": version.parent_version_id,
        "job_id": version.job_id,
    }
    if documents is not None:
        out["caveats"] = documents.get("caveats", [])
    return out


def cmd_models(args) -> int:
    store = _store()
    action = args.action or "list"
    registry = store.registry
    if action == "list":
        rows = registry.models()
        if args.json:
            _json([
                {"name": m.name, "latest_version": m.latest_version, "versions": m.version_count,
                 "aliases": m.aliases, "created_at": m.created_at,
                 "deployment": None if m.deployment is None else vars(m.deployment)}
                for m in rows
            ])
        else:
            if not rows:
                print("no models registered yet: train one with `automl train DATA --target COL`")
            for m in rows:
                aliases = ", ".join(f"{a}→{v}" for a, v in m.aliases.items())
                print(f"{m.name:<30} latest {m.latest_version:<8} {m.version_count} version(s)  {aliases}")
        return 0
    if action == "show":
        version = registry.get(args.ref)
        data = version_dict(version, registry.documents(version.ref))
        if args.json:
            _json(data)
        else:
            _print_version(data)
        return 0
    if action == "delete":
        if "@" in args.ref:
            deleted = registry.delete_version(args.ref)
            print(f"deleted {deleted.ref}")
        else:
            count = registry.delete_model(args.ref)
            print(f"deleted {args.ref} ({count} version(s))")
        return 0
    if action == "promote":
        version = registry.set_alias(args.ref, args.alias)
        print(f"{version.name}@{args.alias} → {version.version}")
        return 0
    if action == "export":
        path = registry.export_version(args.ref, args.out)
        print(f"exported {registry.get(args.ref).ref} to {path}")
        return 0
    if action == "import":
        version = registry.import_archive(args.file, name=args.name)
        print(f"imported as {version.ref}")
        return 0
    if action in ("reproduce", "retrain"):
        from .cli import ProgressBar
        from .training import reproduce, retrain

        bar = None if args.quiet else ProgressBar()
        if action == "reproduce":
            result = reproduce(store, args.ref, on_event=bar)
        else:
            result = retrain(store, args.ref, args.data, on_event=bar)
        original = registry.get(args.ref)
        summary = {
            "ref": result.version.ref,
            "parent": original.ref,
            "cv_score": result.automl.best_score_,
            "parent_cv_score": original.cv_score,
        }
        if args.json:
            _json(summary)
        else:
            print(f"registered {summary['ref']} (child of {original.ref}); cv score {summary['cv_score']:.6g} "
                  f"(parent {original.cv_score:.6g})")
        return 0
    if action == "tree":
        edges = registry.family_tree(args.ref)
        if args.json:
            _json([vars(e) for e in edges])
        else:
            for e in edges:
                print(f"{e.parent} → {e.child}")
        return 0
    raise SystemExit(f"unknown action {action}")  # argparse prevents this


def _print_version(data: dict) -> None:
    print(f"{data['ref']}  task {data['task']}  {data['metric']} {data['cv_score']:.6g}  aliases {data['aliases']}")
    lineage = data["lineage"] or {}
    src = lineage.get("data") or {}
    print(f"  data: {src.get('file')}  rows {src.get('rows')}  sha256 {str(src.get('fingerprint_sha256'))[:16]}…")
    print(f"  target: {lineage.get('target')}  chosen: {lineage.get('chosen_model')}  seed {lineage.get('seed')}  "
          f"budget {lineage.get('time_budget')}")
    print(f"  cv plan: {(lineage.get('cv_plan') or {}).get('reason')}")
    print(f"  parent: {lineage.get('parent')}  job: {lineage.get('job_id')}  git: {lineage.get('git_commit')}")
    for caveat in data.get("caveats") or []:
        print(f"  caveat ({caveat['severity']}): {caveat['message']}")


def cmd_jobs(args) -> int:
    store = _store()
    jobs = store.jobs.list(limit=args.limit)
    if args.json:
        _json([
            {"id": j.id, "kind": j.kind, "status": j.status, "created_at": j.created_at, "started_at": j.started_at,
             "finished_at": j.finished_at, "error": j.error, "result": j.result, "params": j.params,
             "progress": store.jobs.progress(j.id)}
            for j in jobs
        ])
        return 0
    if not jobs:
        print("no jobs yet")
    for j in jobs:
        progress = store.jobs.progress(j.id) or {}
        pct = progress.get("percent")
        shown = f"{pct:5.1f}%" if isinstance(pct, (int, float)) else "   -  "
        detail = j.error or (j.result or {}).get("ref", "") if isinstance(j.result, dict) or j.error else ""
        print(f"{j.id[:12]}  {j.status:<11} {shown}  {j.params.get('source', '')}  {detail}")
    return 0


def cmd_logs(args) -> int:
    report = _store().monitoring.prune(args.older_than, dry_run=args.dry_run)
    if args.json:
        _json({"files": report.files, "records": report.records, "bytes": report.bytes,
               "kept_files": report.kept_files, "dry_run": report.dry_run})
        return 0
    verb = "would delete" if report.dry_run else "deleted"
    print(f"{verb} {report.files} log file(s): {report.records:,} records, {report.bytes / 1e6:,.1f} MB older than "
          f"{args.older_than}; {report.kept_files} file(s) kept")
    return 0


def add_parsers(sub) -> None:
    models = sub.add_parser("models", help="list, show, promote, export, import, reproduce or retrain models")
    models.set_defaults(func=cmd_models, action="list", json=False)
    models.add_argument("--json", action="store_true")
    actions = models.add_subparsers(dest="action")
    show = actions.add_parser("show", help="a version with its lineage")
    show.add_argument("ref")
    show.add_argument("--json", action="store_true")
    delete = actions.add_parser("delete", help="delete a model (NAME) or one version (NAME@x.y.z)")
    delete.add_argument("ref")
    promote = actions.add_parser("promote", help="point an alias (production, staging...) at a version")
    promote.add_argument("ref")
    promote.add_argument("--alias", required=True)
    export = actions.add_parser("export", help="write one portable file with the model and its card")
    export.add_argument("ref")
    export.add_argument("--out", required=True)
    imp = actions.add_parser("import", help="register a model exported by `models export`")
    imp.add_argument("file")
    imp.add_argument("--name")
    reproduce = actions.add_parser("reproduce", help="re-run a version's recipe on its stored data")
    reproduce.add_argument("ref")
    reproduce.add_argument("--json", action="store_true")
    reproduce.add_argument("--quiet", action="store_true")
    retrain = actions.add_parser("retrain", help="run a version's recipe on new data, as a child version")
    retrain.add_argument("ref")
    retrain.add_argument("data")
    retrain.add_argument("--json", action="store_true")
    retrain.add_argument("--quiet", action="store_true")
    tree = actions.add_parser("tree", help="parent → child edges of a model's versions")
    tree.add_argument("ref")
    tree.add_argument("--json", action="store_true")
    for p in (delete, promote, export, imp):
        p.set_defaults(json=False)

    jobs = sub.add_parser("jobs", help="training jobs and their progress")
    jobs.add_argument("--json", action="store_true")
    jobs.add_argument("--limit", type=int, default=50)
    jobs.set_defaults(func=cmd_jobs)

    logs = sub.add_parser("logs", help="the prediction and feedback logs that monitoring reads")
    actions = logs.add_subparsers(dest="action", required=True)
    prune = actions.add_parser("prune", help="delete log files whose every record is older than a duration")
    prune.add_argument("--older-than", required=True, help="a duration such as 90d or 12w (at least 1d)")
    prune.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    prune.add_argument("--json", action="store_true")
    prune.set_defaults(func=cmd_logs)


def store_error_types() -> tuple:
    from store import StoreError

    return (StoreError,)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(0)
