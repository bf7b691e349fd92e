"""``python -m spark.sql "SELECT ..."``: query the lake's tables (``smartcity.*``) by name."""

from __future__ import annotations

import argparse
import sys

from spark.catalog import register_lake
from spark.settings import output_root
from stack.env import load_env
from stack.errors import StackError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spark.sql", description=__doc__)
    parser.add_argument("query", help="Spark SQL, e.g. SELECT count(*) FROM smartcity.gps_data")
    parser.add_argument("--output-root", help="lake root (default s3a://$S3_BUCKET/)")
    parser.add_argument("--limit", type=int, default=50, help="rows to show")
    args = parser.parse_args(argv)
    try:
        env = load_env()
        root = output_root(env, args.output_root)
        from spark.session import build_session

        spark = build_session("cityfleet-sql", env)
        register_lake(spark, root)
        spark.sql(args.query).show(args.limit, truncate=False)
    except StackError as exc:
        print(f"spark.sql: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # a bad query: one line, no JVM stack trace
        if type(exc).__name__ in ("AnalysisException", "ParseException"):
            print(f"spark.sql: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
