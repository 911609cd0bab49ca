FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md celeryconfig.py ./
COPY videogen ./videogen
COPY workers ./workers
COPY config ./config
# The sandbox extra too: the compose file's `sandbox` profile runs `videogen sandbox` here.
RUN pip install --no-cache-dir '.[sandbox,api]'
ENTRYPOINT []
CMD ["videogen", "--help"]
