# Image for the KPI worker, exporter and topic bootstrapper.
# Subcommands: `kpi create-topics`, `kpi worker`, `kpi exporter`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY pyproject.toml README.md ./
COPY streams/ ./streams/
COPY loadtest/ ./loadtest/

RUN pip install --no-cache-dir .

# Run as an unprivileged user; Faust keeps its local state under
# KPI_FAUST_DATADIR (default /tmp/faust in compose), which is writable.
RUN useradd --system --create-home --uid 10001 --user-group kpi
USER kpi

CMD ["kpi", "--help"]
