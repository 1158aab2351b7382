# ISO-Bench variant layer (human or agent) on top of a task image: apply the patch, never partially,
# and rebuild what it touches (a change to C++/CUDA/CMake sources triggers the extension build).
FROM {{task_image}}
COPY variant.diff /tmp/isobench-variant.diff
RUN cd {{src}} && git apply --check --whitespace=nowarn /tmp/isobench-variant.diff \
    && git apply --whitespace=nowarn /tmp/isobench-variant.diff && rm /tmp/isobench-variant.diff
RUN {{rebuild}}
LABEL isobench.owner=pytest-isobench isobench.kind=variant isobench.variant={{variant}} \
      isobench.patch_sha256={{patch_sha256}} isobench.native_rebuild={{native}}
