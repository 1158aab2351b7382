# ISO-Bench task image for SGLang at one base commit (rendered by pytest_isobench.sandbox.images).
# The build context holds the base tree as src.tar (made by the harness from its own clone). SGLang's
# Python package lives in python/ and is installed editable with the released sgl-kernel and
# flashinfer wheels it pins; the sgl-kernel CUDA sources are built only when a variant changes them.
# The tree is committed before the install, so the harness can tell build outputs from sources.
FROM {{base_image}}
ARG DEBIAN_FRONTEND=noninteractive
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 LANG=C.UTF-8
RUN if ! command -v {{python}} >/dev/null || ! command -v git >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends \
            git ca-certificates curl build-essential libnuma1 {{python}} {{python}}-dev {{python}}-venv \
        && rm -rf /var/lib/apt/lists/*; fi \
    && {{python}} -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv
ADD src.tar /opt/src/
RUN git -C /opt/src init -q -b main \
    && git -C /opt/src -c user.name=ISO-Bench -c user.email=isobench@localhost add --all --force \
    && git -C /opt/src -c user.name=ISO-Bench -c user.email=isobench@localhost commit -q -m "Initial state"
WORKDIR /opt/src
RUN pip install --upgrade pip setuptools wheel \
    && pip install -e "python[all]" --find-links {{flashinfer_index}}
RUN pip install {{bench_deps}}
LABEL isobench.owner=pytest-isobench isobench.kind=task isobench.repo=sglang \
      isobench.base_commit={{base_commit}} isobench.base_image="{{base_image}}" \
      isobench.src=/opt/src \
      isobench.rebuild="cd /opt/src/sgl-kernel && MAX_JOBS={{max_jobs}} pip install --no-build-isolation ."
