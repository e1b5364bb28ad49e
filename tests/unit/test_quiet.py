"""`python -m daily_bids` prints the platform's lines, not TensorFlow's C++ logs or libraries' warnings about
themselves; `--verbose` shows them. Run in subprocesses, as the silencing acts on the process's stderr."""

import subprocess
import sys
import textwrap

# Fits a tiny Keras network, which makes TensorFlow 2.21 log from C++ (absl's notice, then "oneDNN custom operations
# are on"), raises the warning pyspark gives under pandas 3, opens a new MLflow store (MLflow logs its set-up), then
# writes a line of its own and fails.
SCRIPT = textwrap.dedent(
    """
    import sys, warnings
    from daily_bids.quiet import quiet  # importing daily_bids sets TensorFlow's log level, as the CLI has it
    if sys.argv[1] == "quiet":
        quiet()
    import numpy as np
    import keras
    network = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    network.compile(loss="mse")
    network.fit(np.ones((64, 3)), np.ones(64), epochs=1, verbose=0)
    network.predict(np.ones((8, 3)), verbose=0)
    warnings.warn("PySpark does not yet fully support pandas >= 3.0.0.", FutureWarning)
    import mlflow
    mlflow.set_tracking_uri(f"sqlite:///{sys.argv[2]}")  # a new store: MLflow logs that it creates its tables
    mlflow.search_experiments()
    print("the platform's own line", file=sys.stderr)
    raise SystemExit("a failure still shows")
    """
)


def _stderr(mode: str, tmp_path) -> str:
    script = tmp_path / "noisy.py"
    script.write_text(SCRIPT)
    store = tmp_path / f"mlflow-{mode}.db"
    done = subprocess.run([sys.executable, str(script), mode, str(store)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    return done.stderr


def test_without_quiet_the_noise_is_there(tmp_path):
    loud = _stderr("verbose", tmp_path)
    for noise in ("port.cc", "absl::InitializeLog", "Creating initial MLflow database", "PySpark does not yet fully"):
        assert noise in loud


def test_quiet_drops_native_logs_and_library_warnings_and_keeps_everything_else(tmp_path):
    assert _stderr("quiet", tmp_path).splitlines() == ["the platform's own line", "a failure still shows"]
