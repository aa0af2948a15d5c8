"""FF variants built from the core's parts; each module holds one method and its trainer."""
