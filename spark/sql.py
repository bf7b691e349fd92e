"""``python -m spark.sql "SELECT ..." [...]``: query the lake's tables (``smartcity.*``) by name.

The tables live in a local Hive metastore in the state folder (``spark.catalog``), so they
persist across sessions; each run registers what is new. They are Delta tables, so
``DESCRIBE HISTORY smartcity.vehicle_data`` lists one commit per micro-batch and
``SELECT ... FROM smartcity.vehicle_data VERSION AS OF 3`` (or ``TIMESTAMP AS OF``) reads an
earlier version. Several queries run in order in one session.
"""

from __future__ import annotations

import argparse
import sys

from cityconf.env import load_env
from cityconf.errors import UserError
from spark.lake import default_root
from spark.report import NAMES as GOLD_REPORTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spark.sql", description=__doc__)
    parser.add_argument(
        "query", nargs="+", help="Spark SQL, e.g. SELECT count(*) FROM smartcity.gps_data"
    )
    parser.add_argument("--output-root", help="lake root (default s3a://$S3_BUCKET/)")
    parser.add_argument("--limit", type=int, default=50, help="rows to show per query")
    args = parser.parse_args(argv)
    try:
        env = load_env()
        root = default_root(env, args.output_root)
        from spark.catalog import catalog_conf, register
        from spark.reader import LakeReader
        from spark.session import build_session

        spark = build_session("cityfleet-sql", env, extra_conf=catalog_conf(env))
        register(spark, LakeReader.from_env(env, root), GOLD_REPORTS)
        for query in args.query:
            spark.sql(query).show(args.limit, truncate=False)
    except UserError as exc:
        print(f"spark.sql: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # a bad query: one line, no JVM stack trace
        return query_error(exc)
    return 0


def query_error(exc: Exception) -> int:
    """One line for what the user can fix (a bad query, a busy metastore); re-raise the rest."""
    from spark.catalog import METASTORE_BUSY, metastore_dir

    text = str(exc)
    if METASTORE_BUSY in text:
        print(
            f"spark.sql: the catalog's metastore ({metastore_dir(load_env())}) is open in another "
            "Spark process (spark.sql or spark.maintain); run this again when that one ends",
            file=sys.stderr,
        )
        return 1
    from pyspark.errors import AnalysisException, ParseException

    if isinstance(exc, AnalysisException | ParseException):
        print(f"spark.sql: {text.splitlines()[0]}", file=sys.stderr)
        return 2
    raise exc


if __name__ == "__main__":
    sys.exit(main())
