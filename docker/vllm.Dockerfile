# ISO-Bench task image for vLLM at one base commit (rendered by pytest_isobench.sandbox.images).
# {{base_image}} needs CUDA; {{python}} is installed when it is missing. The repository is installed
# the way vLLM supports at that commit: editable with the precompiled per-commit wheel when one is
# published (VLLM_USE_PRECOMPILED), a source build of the CUDA extensions otherwise.
FROM {{base_image}}
ARG DEBIAN_FRONTEND=noninteractive
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 LANG=C.UTF-8
RUN if ! command -v {{python}} >/dev/null || ! command -v git >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends \
            git ca-certificates curl build-essential {{python}} {{python}}-dev {{python}}-venv \
        && rm -rf /var/lib/apt/lists/*; fi \
    && {{python}} -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv
# the repository at the base commit, nothing later (a shallow fetch of exactly that commit)
RUN git init -q /opt/src && cd /opt/src \
    && git fetch -q --depth 1 {{repo_url}} {{base_commit}} && git checkout -q FETCH_HEAD
WORKDIR /opt/src
RUN pip install --upgrade pip setuptools wheel \
    && if curl -fsI "{{wheel_url}}" >/dev/null; then \
        echo "isobench: precompiled wheel {{wheel_url}}"; \
        VLLM_USE_PRECOMPILED=1 VLLM_PRECOMPILED_WHEEL_LOCATION="{{wheel_url}}" pip install -e .; \
    else \
        echo "isobench: no per-commit wheel, building from source"; \
        if [ -f requirements-build.txt ]; then pip install -r requirements-build.txt; fi; \
        MAX_JOBS={{max_jobs}} TORCH_CUDA_ARCH_LIST="{{cuda_arch}}" pip install --no-build-isolation -e .; \
    fi
# the benchmark's own dependencies
RUN pip install {{bench_deps}}
# the agent's working copy: the same tree with a fresh one-commit history (no later objects)
RUN rm -rf /opt/src/.git && git -C /opt/src init -q -b main \
    && git -C /opt/src -c user.name=ISO-Bench -c user.email=isobench@localhost add --all --force \
    && git -C /opt/src -c user.name=ISO-Bench -c user.email=isobench@localhost commit -q -m "Initial state"
LABEL isobench.owner=pytest-isobench isobench.kind=task isobench.repo=vllm \
      isobench.base_commit={{base_commit}} isobench.base_image="{{base_image}}"
