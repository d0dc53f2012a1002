# The operator's image, built in users' CI (nothing here runs a Docker engine): the wheel is built in
# one stage and installed alone into a slim Python 3.11, so no build tool or source tree ships.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
# psql and pg_dump for the database steps' Jobs and checks (Debian's postgresql-client).
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# A numeric, unprivileged user, so runAsNonRoot can check it without a passwd lookup.
RUN groupadd --gid 10001 remediator \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin remediator
USER 10001:10001
# The root filesystem is read-only in the chart: no bytecode written at run time.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# No HEALTHCHECK: Kubernetes probes /healthz (the chart's liveness and readiness probes).
ENTRYPOINT ["remediator"]
CMD ["run", "--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz"]
