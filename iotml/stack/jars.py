"""Resolve Apache Kafka's jars from Maven Central into a cache directory, once per version."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

from iotml.core.errors import StackError

INSTALL_HINT = {
    "java": "Java 17+ is needed to run Kafka: install it with `apt-get install -y openjdk-17-jre-headless`",
    "mvn": "Maven is needed to fetch the Kafka jars: install it with `apt-get install -y maven`",
}


def require(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise StackError(INSTALL_HINT[tool])
    return path


def kafka_libs(cache_dir: Path, version: str, quiet: bool = False) -> Path:
    """The directory holding Kafka ``version``'s runtime jars, resolving it on first use."""
    libs = cache_dir / f"kafka-{version}" / "libs"
    done = libs.parent / ".complete"
    if done.exists():
        return libs
    libs.parent.mkdir(parents=True, exist_ok=True)
    with open(libs.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test sessions may resolve at once
        if done.exists():
            return libs
        mvn = require("mvn")
        if not quiet:
            print(f"resolving Apache Kafka {version} jars from Maven Central ...", file=sys.stderr)
        with tempfile.TemporaryDirectory(dir=libs.parent) as tmp:
            pom = Path(tmp) / "pom.xml"
            pom.write_text(resources.files("iotml.stack").joinpath("kafka-pom.xml").read_text())
            out = Path(tmp) / "libs"
            cmd = [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                f"-Dkafka.version={version}",
                f"-DoutputDirectory={out}",
                "-DincludeScope=runtime",
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0 or not any(out.glob("kafka_2.13-*.jar")):
                raise StackError(
                    f"could not resolve org.apache.kafka:kafka_2.13:{version} with Maven:\n"
                    + (proc.stdout + proc.stderr)[-2000:]
                )
            if libs.exists():
                shutil.rmtree(libs)
            out.rename(libs)
        done.write_text(version)
    return libs
