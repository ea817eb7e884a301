# Container image of the Function App, for container hosting (Azure Functions on Container Apps,
# an Elastic Premium or Dedicated plan running a custom container, or a local `docker run`).
# The zip-deployed app (.github/workflows/deploy-production.yml) does not use this file.
#
#   docker build --build-arg APP_VERSION="$(git rev-parse HEAD)" -t stratus .
#   docker run -p 8080:80 --env-file app.env stratus     # then GET http://localhost:8080/healthz
#
# Settings come from the environment at run time (the same names as the app settings in
# infra/modules/functionapp.bicep); nothing secret is baked into the image.
FROM mcr.microsoft.com/azure-functions/python:4-python3.13

ENV AzureWebJobsScriptRoot=/home/site/wwwroot \
    AzureFunctionsJobHost__Logging__Console__IsEnabled=true \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies first, so that a code change does not reinstall them.
COPY requirements.txt /tmp/requirements.txt
RUN python -m pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt

# The app itself; .dockerignore lets only the runtime files through.
COPY . /home/site/wwwroot

# Reported by /healthz; pass the commit SHA at build time.
ARG APP_VERSION=dev
ENV APP_VERSION=${APP_VERSION}

# The base image's Functions host listens on port 80. /healthz touches no dependency, so this
# checks the host and the Python worker only. It uses python, which the image is sure to have
# (curl is not guaranteed).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:80/healthz', timeout=4).status == 200 else 1)"]
