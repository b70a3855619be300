"""Configuration: the YAML schema (msgspec Structs), loading with key-path errors, the frozen
runtime config, units, Go-regex translation, deployment stamps, the shutdown budget and the
key documentation. Pure: no sockets, processes or clocks; imports no other room."""
