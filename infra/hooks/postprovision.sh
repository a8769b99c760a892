#!/bin/sh
# azd postprovision hook: builds the connector image in the Azure Container Registry (ACR Tasks, so no local
# Docker is needed) and records it as CONNECTOR_IMAGE. The tag is a hash of the sources that go into the image,
# so an unchanged connector is not rebuilt. When the image changed, run `azd provision` once more: that deploys
# (or updates) the connector container group, its DNAT rule and its DNS record.
#
# Needs: az (logged in), and the azd environment values AZURE_CONTAINER_REGISTRY_NAME and
# AZURE_CONTAINER_REGISTRY_ENDPOINT (outputs of infra/main.bicep).
set -eu

repository=lwm2m-connector
dockerfile=connector/Dockerfile

if [ ! -f "$dockerfile" ]; then
  echo "postprovision: $dockerfile not found; the connector image is not built and the connector not deployed." >&2
  exit 1
fi
: "${AZURE_CONTAINER_REGISTRY_NAME:?missing; run azd provision first}"
: "${AZURE_CONTAINER_REGISTRY_ENDPOINT:?missing; run azd provision first}"

# Content hash of what the image is built from (sources, not build output), as it is on disk now.
sources_hash=$(
  {
    find connector shared -type f \( -name '*.ts' -o -name '*.json' -o -name 'Dockerfile' \) | LC_ALL=C sort | xargs cat
    cat package.json package-lock.json tsconfig.json
  } | git hash-object --stdin | cut -c1-12
)
image="$AZURE_CONTAINER_REGISTRY_ENDPOINT/$repository:$sources_hash"

if az acr repository show --name "$AZURE_CONTAINER_REGISTRY_NAME" --image "$repository:$sources_hash" \
  --only-show-errors >/dev/null 2>&1; then
  echo "postprovision: $image already built"
else
  echo "postprovision: building $image in $AZURE_CONTAINER_REGISTRY_NAME"
  az acr build --registry "$AZURE_CONTAINER_REGISTRY_NAME" --image "$repository:$sources_hash" \
    --file "$dockerfile" --only-show-errors .
fi

if [ "${CONNECTOR_IMAGE:-}" != "$image" ]; then
  azd env set CONNECTOR_IMAGE "$image"
  echo "postprovision: CONNECTOR_IMAGE is now $image."
  echo "postprovision: run 'azd provision' once more to deploy the connector with it."
fi
