# Image of the ISP suite: trytond with the six ISP modules and the sao back
# office.  Used by docker-compose.yml for trytond, trytond-cron and
# trytond-worker.
FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
        libpango-1.0-0 libpangoft2-1.0-0 postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/isp
COPY pyproject.toml README.md ./
COPY addons ./addons
# the backup tool (scripts/backup, the compose stack's backup service)
COPY tools/__init__.py tools/backup.py ./tools/
RUN pip install --no-cache-dir . \
    && cd /opt && npm pack tryton-sao@8.0 && tar xzf tryton-sao-*.tgz \
    && mv package sao && cd sao \
    && npm install --omit=dev --legacy-peer-deps --no-audit --no-fund \
    && rm -f /opt/tryton-sao-*.tgz
RUN useradd --system --home /var/lib/trytond trytond \
    && mkdir -p /var/lib/trytond /var/lib/isp-metrics /var/backups/isp \
    && chown trytond /var/lib/trytond /var/lib/isp-metrics /var/backups/isp
ENV TRYTOND_ATTACHMENT__PATH=/var/lib/trytond
USER trytond
EXPOSE 8000
CMD ["trytond"]
