# Image of the ISP suite: trytond with the six ISP modules and the sao back
# office.  Used by docker-compose.yml for trytond, trytond-cron and
# trytond-worker.
FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
        libpango-1.0-0 libpangoft2-1.0-0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/isp
COPY pyproject.toml README.md ./
COPY addons ./addons
RUN pip install --no-cache-dir . \
    && cd /opt && npm pack tryton-sao@8.0 && tar xzf tryton-sao-*.tgz \
    && mv package sao && cd sao \
    && npm install --omit=dev --legacy-peer-deps --no-audit --no-fund \
    && rm -f /opt/tryton-sao-*.tgz
RUN useradd --system --home /var/lib/trytond trytond \
    && mkdir -p /var/lib/trytond && chown trytond /var/lib/trytond
ENV TRYTOND_ATTACHMENT__PATH=/var/lib/trytond
USER trytond
EXPOSE 8000
CMD ["trytond"]
