# The demo's image: hypermodel, the `wines` app and its model server (waitress).
#
#   docker build -t wines:dev .                       # server only; models come from $HML_ROOT
#   docker build --build-arg TRAIN=1 -t wines:dev .   # also trains the demo model into the image
#   docker run -p 8000:8000 wines:dev                 # = wines inference run-prod
#
# The ENTRYPOINT is the app's console script: the Kubernetes Deployment written by
# `wines inference deploy` passes only the arguments (`inference run-prod --port ...`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Metadata first, so the dependency layer is rebuilt only when it changes.
COPY pyproject.toml setup.py README.md ./
COPY src ./src
COPY demo ./demo
RUN pip install ".[serve]" ./demo

# An unprivileged user; the bucket root defaults to a directory it owns. In a cluster, point
# HML_ROOT at a gs:// or s3:// bucket (deploying with a bucket root passes it to the pod).
RUN useradd --create-home --uid 10001 hml && mkdir -p /var/lib/hml && chown hml /var/lib/hml
USER 10001
ENV HML_ROOT=/var/lib/hml
WORKDIR /home/hml

ARG TRAIN=0
RUN if [ "$TRAIN" = "1" ]; then wines pipelines wines run-all; fi

EXPOSE 8000
ENTRYPOINT ["wines"]
CMD ["inference", "run-prod", "--host", "0.0.0.0", "--port", "8000"]
