"""VACUUM runs as a few tasks, not Spark's default 10,000: on two cores each task costs ~10 ms,
so a ten-file table's VACUUM took a minute (``spark.session.delta_conf``)."""

from __future__ import annotations

from pathlib import Path

from spark import maintain


def test_vacuum_lists_a_small_table_in_a_few_tasks(local_delta_spark, tmp_path: Path) -> None:
    spark = local_delta_spark
    uri = str(tmp_path / "table")
    for n in range(3):
        spark.range(n * 10, n * 10 + 10).write.format("delta").mode("append").save(uri)
    sc = spark.sparkContext
    sc.setJobGroup("vacuum-under-test", "VACUUM")
    try:
        maintain.vacuum(spark, uri, maintain.MIN_RETAIN_HOURS)
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    tracker = sc.statusTracker()
    stages = [
        stage
        for job in tracker.getJobIdsForGroup("vacuum-under-test")
        for stage in (tracker.getJobInfo(job).stageIds if tracker.getJobInfo(job) else ())
    ]
    tasks = sum(info.numTasks for s in stages if (info := tracker.getStageInfo(s)))
    assert stages and tasks < 1000, f"VACUUM ran {tasks} tasks in {len(stages)} stages"
    assert spark.read.format("delta").load(uri).count() == 30
