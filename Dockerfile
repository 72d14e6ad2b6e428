# The demo's image: hypermodel, the `wines` app and its model server (waitress).
#
#   wines image build --tag wines:dev                 # = docker build with the commit baked in
#   docker build -t wines:dev .                       # server only; models come from $HML_ROOT
#   docker build --build-arg TRAIN=1 -t wines:dev .   # also trains the demo model into the image
#   docker run -p 8000:8000 wines:dev                 # = wines inference run-prod
#
# The ENTRYPOINT is the app's console script: the Kubernetes Deployment written by
# `wines inference deploy` passes only the arguments (`inference run-prod --port ...`).
#
# BASE_IMAGE: any Debian-like image with python3 (>= 3.10) and its venv module; the tests build
# on a local Debian bookworm image (scripts/base-image.sh) with `--network host`.
# HML_GIT_COMMIT: the commit the image is built from (`<app> image build` passes it); the code
# in the image has no .git, so lineage and the model server read it from the environment.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/hml/bin:$PATH

WORKDIR /src
# Metadata first, so the dependency layer is rebuilt only when it changes.
COPY pyproject.toml setup.py README.md ./
COPY src ./src
COPY demo ./demo
# A virtual environment: works the same on python:3.11-slim and on a distribution's python3
# (whose system site-packages pip refuses to touch, PEP 668). By default only the core, the
# serve extra and the demo: no Kubeflow, Kubernetes or bucket clients, no TensorFlow or torch;
# pods reading a bucket need its extra (--build-arg EXTRAS=serve,gcs or serve,s3). pip
# compiles the bytecode here, once: nothing writes it at run time (PYTHONDONTWRITEBYTECODE).
ARG EXTRAS=serve
RUN python3 -m venv /opt/hml \
    && pip install ".[${EXTRAS}]" ./demo \
    && rm -rf /src/build /src/src/*.egg-info /src/demo/src/*.egg-info

# An unprivileged user; the bucket root defaults to a directory it owns. In a cluster, point
# HML_ROOT at a gs:// or s3:// bucket (deploying with a bucket root passes it to the pod).
RUN useradd --create-home --uid 10001 hml && mkdir -p /var/lib/hml && chown hml /var/lib/hml
USER 10001
ENV HML_ROOT=/var/lib/hml
WORKDIR /home/hml

# After the install, so that the same code at another commit reuses the layers above.
ARG HML_GIT_COMMIT=
ENV HML_GIT_COMMIT=${HML_GIT_COMMIT}

ARG TRAIN=0
RUN if [ "$TRAIN" = "1" ]; then wines pipelines wines run-all; fi

# HML_VERSION: the hypermodel version installed above (`<app> image build` passes it).
ARG HML_VERSION=
LABEL org.opencontainers.image.revision="${HML_GIT_COMMIT}" \
      org.opencontainers.image.version="${HML_VERSION}"

EXPOSE 8000
ENTRYPOINT ["wines"]
CMD ["inference", "run-prod", "--host", "0.0.0.0", "--port", "8000"]
