"""Where a job runs: ``local`` (in the pytest process, the default) or ``ray`` (on a Ray cluster).

A job splits at the patch: the solve stage (prepare, agent, patch) and the measure stage (benchmark,
correctness, judges), which resumes from the recorded patch as a rerun with the same run id does.
"""
