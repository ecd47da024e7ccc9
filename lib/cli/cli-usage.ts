/** The usage text, printed by `switchyard help` and with every usage error. */
export const USAGE = `Usage: switchyard [-c discovery.toml | --backend <name> ...] <command> [arguments] [options]

Commands:
  ls [service]            without a service: the services the registry knows;
                          with one: its instances (address, id, version, zone, weight, healthy)
  watch <service>         live changes, one line each (added / removed / updated / state), until Ctrl-C
  register --name <service> --address <host:port> [--ttl <s>] [--id <id>] [--tag k=v ...]
                          [--version <v>] [--zone <z>] [--region <r>] [--weight <n>]
                          registers a manual instance and keeps it alive until Ctrl-C, then deregisters it
  deregister <instance-id> [--name <service>]
                          removes an instance by id (etcd: deletes its key; consul: agent deregistration;
                          local: deletes its file)
  check [service]         is the registry reachable (and are we allowed in)? exits 1 when not
  help [command]          this text

Registry (a configuration file, flags, or both; flags win):
  -c, --config <file>     the module's configuration (.toml, .json, .yaml)
  -b, --backend <name>    local | etcd | consul | static | dns | memory | mesh (default: local)
  --endpoints <urls>      etcd endpoints, comma-separated or repeated
  --url <url>             consul agent URL (etcd: one endpoint; mesh: the xDS server)
  --dir <path>            local backend folder
  --addresses <list>      static / dns addresses, comma-separated or repeated
  -n, --namespace <ns>    namespace (default: the configuration's, else "default")
  --token <token>         consul ACL token (better: SWITCHYARD_TOKEN or CONSUL_HTTP_TOKEN in the environment)
  --user <name>           etcd user
  --password <password>   etcd password (better: SWITCHYARD_PASSWORD in the environment)

Output and behaviour:
  --json                  machine-readable output (ls, check: one JSON document; watch, register: one JSON object per line)
  -t, --timeout <s>       how long to wait for the registry (default 5)
  -v, --verbose           also print the registry's informational messages
  --tag k=v               ls / watch: keep instances with this tag (repeatable)
  --version <v>           ls / watch: keep instances of this version (a semver range when the configuration routes by semver)

Exit codes: 0 done, 1 the registry refused or could not be reached, 2 bad command line or configuration.
Secrets (the consul token, the etcd password) are never printed.
`;
