"""Policies: what turns a step's prompt into a model output.

``base`` (the ``Policy`` protocol), ``reference`` (replays gold actions), ``pool`` (vLLM actors:
``ActorPool``), ``teacher`` (hosted teachers with fallback: ``TeacherPolicy``), built by name in
``factory.build_policy``. Underneath: ``client`` (one OpenAI-compatible endpoint), ``wire``
(request/response shapes), ``endpoint`` + ``router`` + ``resilience`` (circuit, retries,
routing), ``envfile`` (API keys), ``units`` (systemd environment files for the actors).
"""
