#!/usr/bin/env bash
# Runs what CI runs (.ci/run): fmt, clippy -D warnings, rustdoc -D warnings, bench smoke, tests.
exec bash "$(dirname "$0")/../.ci/run"
