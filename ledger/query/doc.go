// Package query owns the ledger's HTTP JSON API and its Go client: reads of
// twins, farms, nodes (filtered by farm, country, online and free capacity,
// which is how clients place workloads), contracts (by twin, node, state),
// bills, balances, proposals and parameters; cost estimates; and POST /tx,
// which hands a signed transaction to the chain and waits for its block.
//
// Routes (all JSON):
//
//	GET  /status                   chain id, height, app hash
//	GET  /params                   billing parameters and prices
//	GET  /accounts/{key}           balance, next nonce, twin id
//	GET  /twins/{id}
//	GET  /farms, /farms/{id}
//	GET  /nodes?farm=&country=&online=&free_cru=&free_mru=&free_sru=&free_hru=&free_ips=&renter=&limit=
//	GET  /nodes/{id}
//	GET  /contracts?twin=&node=&state=&type=&limit=
//	GET  /contracts/{id}, /contracts/{id}/bills
//	GET  /proposals/{id}
//	GET  /estimate?cru=&mru=&sru=&hru=&ips=&hours=&balance=
//	GET  /events?since=HEIGHT&node=&twin=&contract=&limit=   contract created, updated, canceled, grace, resumed, deleted, billed
//	POST /tx                       body: a signed transaction
//
// The server listens where it is told; chain defaults it to loopback.
//
// May import: ledger, grid, key and the standard library.
// Must never be imported by: ledger (the state machine) or engines.
package query
