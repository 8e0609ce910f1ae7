"""The trajectory viewer: ``agentd view RUN_ID`` writes a static, self-contained HTML site.

* ``html``     — escaping, the page shell (inline CSS and script under a strict CSP), YAML and
                 diff highlighting
* ``summary``  — the small per-episode summaries the listings are built from
* ``episode``  — an episode's page: every step with its reasoning, action, states, diff,
                 rewards and the verifier's checks
* ``listing``  — the run's index, paged task and episode listings, each task's page
* ``site``     — streams a run's shards into a site directory that replaces the old one whole
* ``serve``    — ``--serve``: a static file server on 127.0.0.1
(the ``agentd view`` handler is ``agentd.cli.view``)

Layering: like ``reports/``, it reads ``records`` and ``trajectories`` and nothing below them.
"""
