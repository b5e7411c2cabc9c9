"""The experiment runner behind ``tools/run_experiments.py`` and ``tools/demo.py``.

* :mod:`.templates`: the one template source of generated configs (also used by
  ``tools/misc/generate_hicd_configs.py``);
* :mod:`.plan`: the request, result keys, trainings, evaluations and their configs;
* :mod:`.launch`: subprocesses, best-on-val selection, the results CSV, parallel execution;
* :mod:`.summary`: ``results.md`` / ``results_f1.png`` (primitives in
  :mod:`tools.analysis.report`).

See docs/experiments.md.
"""
