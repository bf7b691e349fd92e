"""The one place that builds a SparkSession: local jars for Kafka, s3a and Delta, from `.env`.

Every job, test and report calls :func:`build_session`; nothing downloads packages at run time
(`spark.jars` lists the local files `make up` collected). ``SPARK_MASTER`` sends the same job to
a cluster; :func:`submit_args` gives the matching ``spark-submit`` arguments.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from cityconf import keys
from cityconf.errors import UserError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


JVM_OPTIONS = "-XX:-DontCompileHugeMethods -XX:+UseParallelGC"


def jvm_conf() -> dict[str, str]:
    """How the project's JVMs run: huge methods JIT-compiled, and the throughput collector.

    ``-XX:-DontCompileHugeMethods``: the streaming job's parse-and-check projection compiles to
    one 40 KB Java method (``project_doConsume_0``), and HotSpot by default never JIT-compiles a
    method over 8 KB: every row ran interpreted. Measured on the 2-core machine kind: the
    batch's read+parse+check+summary step 16 % faster, Kafka → silver 7 % faster.

    ``-XX:+UseParallelGC`` instead of the JVM's default G1: a micro-batch allocates its rows,
    Parquet pages and Delta actions and drops them by the next batch, which a stop-the-world
    collector of the young generation frees at less cost than G1's concurrent marking and
    write barriers (the benchmarks' latency rows are measured with it). Measured on the 2-core VM
    (2026-12-03, Kafka → silver in 153,000-row batches, each pair back to back): 20,973
    against 17,574 rows/s, 14,952 against 12,015, 16,719 against 15,364 (+9 to +24 %).
    """
    return {
        "spark.driver.extraJavaOptions": JVM_OPTIONS,
        "spark.executor.extraJavaOptions": JVM_OPTIONS,
    }


def codegen_conf() -> dict[str, str]:
    """Spark keeps more of the classes it generates, so a streaming job stops recompiling them.

    Spark caches its generated classes by their source, 100 by default. A micro-batch of the
    streaming job runs some dozens of queries (the parse, the summary, each Delta table's write,
    its statistics and its snapshot state), more distinct classes than that, so every batch
    compiled them again with Janino, and the JVM, holding new classes, JIT-compiled them again.
    Measured with ``-XX:+PrintCompilation`` over one warm batch of the end-to-end benchmark:
    2,204 JIT compilations of generated-class methods with the default, 336 with 2,000 entries.
    """
    return {"spark.sql.codegen.cache.maxEntries": "2000"}


def micro_batch_conf() -> dict[str, str]:
    """Runtime SQL settings for the streaming job's micro-batches (``spark.stream.start_query``).

    Adaptive query execution off: it cuts every query at each shuffle into stages submitted as
    jobs of their own and re-plans between them. A batch's queries are small and known (the
    summary's distinct count, the snapshot state Delta computes for each table's txnAppId
    check), so that is overhead with nothing to adapt. Measured on the 2-core machine kind,
    250k-row batches on a warm JVM: Kafka → silver 18,687 rows/s with it, 23,043 without.
    """
    return {"spark.sql.adaptive.enabled": "false"}


def delta_conf() -> dict[str, str]:
    """Delta Lake in every session: its SQL extension and catalog, and the table defaults."""
    cores = os.cpu_count() or 2
    return {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # Rebuilding a table's snapshot (which every txnAppId check does) runs as a stage of
        # this many tasks; the default 50 tiny tasks cost seconds per commit on two cores.
        "spark.databricks.delta.snapshotPartitions": str(cores),
        # VACUUM lists the table's files as a Dataset of this many partitions (Spark's default,
        # 10,000, is meant for a large cluster): every task costs ~10 ms, so VACUUM of a
        # 10-file table took 60-74 s on two cores, and 3.1-4.4 s at 2, 8 or 32 (200: 5.5-7.2).
        # Four a core leaves room for a listing that waits on S3 rather than on the CPU.
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(4 * cores),
        # Keep new tables readable by delta-rs (spark.audit, the demo): no deletion vectors.
        "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false",
    }


def spark_jars(env: Mapping[str, str]) -> list[str]:
    """The local jar files for the Kafka connector and s3a, sorted."""
    folder = env.get("SPARK_JARS_DIR")
    jars = sorted(str(p) for p in Path(folder).glob("*.jar")) if folder else []
    if not jars:
        raise UserError(
            f"no Spark jars in SPARK_JARS_DIR={folder or '(unset)'}; run `make up` to collect them"
        )
    return jars


def s3a_conf(env: Mapping[str, str]) -> dict[str, str]:
    """Hadoop s3a keys for the local S3 server: path-style, fixed region, plain keys."""
    endpoint = env.get("S3_ENDPOINT_URL", "")
    missing = [
        k
        for k in ("S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        if not env.get(k)
    ]
    if missing:
        raise UserError(f"{', '.join(missing)} not set; run `make up` (it writes .env)")
    return {
        "spark.hadoop.fs.s3a.endpoint": endpoint,
        "spark.hadoop.fs.s3a.endpoint.region": keys.value(env, "AWS_REGION"),
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(endpoint.startswith("https")).lower(),
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        ),
        "spark.hadoop.fs.s3a.access.key": env["AWS_ACCESS_KEY_ID"],
        "spark.hadoop.fs.s3a.secret.key": env["AWS_SECRET_ACCESS_KEY"],
    }


def engine_conf(env: Mapping[str, str]) -> dict[str, str]:
    """What every Spark process of the project runs with, local or submitted to a cluster."""
    return {
        **jvm_conf(),
        **codegen_conf(),
        **delta_conf(),
        **s3a_conf(env),
        "spark.sql.session.timeZone": "UTC",
    }


def session_conf(
    app_name: str,
    env: Mapping[str, str],
    master: str | None = None,
    extra_conf: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Every Spark setting of a session (pure: no JVM), ``extra_conf`` winning."""
    master = master or keys.value(env, "SPARK_MASTER")
    conf = {
        "spark.master": master,
        "spark.app.name": app_name,
        "spark.jars": ",".join(spark_jars(env)),
        "spark.sql.shuffle.partitions": str(keys.integer(env, "SPARK_SHUFFLE_PARTITIONS", low=1)),
        "spark.driver.memory": keys.value(env, "SPARK_DRIVER_MEMORY"),
        "spark.ui.port": keys.value(env, "SPARK_UI_PORT"),
        "spark.ui.enabled": keys.value(env, "SPARK_UI_ENABLED"),
        "spark.ui.showConsoleProgress": "false",
        **engine_conf(env),
    }
    if master.startswith("local"):
        # The host name may resolve to a non-loopback address; keep everything on 127.0.0.1.
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
    conf.update(extra_conf or {})
    return conf


def build_session(
    app_name: str,
    env: Mapping[str, str],
    master: str | None = None,
    extra_conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Build (or return the process's existing) SparkSession wired for Kafka and s3a."""
    conf = session_conf(app_name, env, master, extra_conf)
    # Read by the JVM launcher, so it must be in this process's environment before the JVM starts.
    os.environ.setdefault("SPARK_LOCAL_IP", keys.value(env, "SPARK_LOCAL_IP"))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(keys.value(env, "SPARK_LOG_LEVEL"))
    return spark


def submit_args(env: Mapping[str, str], extra_conf: Mapping[str, str] | None = None) -> list[str]:
    """``spark-submit`` arguments (``--jars``, ``--conf``) to run a job on a cluster.

    The jar paths must exist on every node (mount SPARK_JARS_DIR at the same path).
    """
    args = ["--jars", ",".join(spark_jars(env))]
    conf = {
        **engine_conf(env),
        **(extra_conf or {}),
    }
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    return args
