// Package bank is the domain of the bank example: accounts as aggregate
// roots, policy gates on their commands, transfers whose events cause
// events on the other account, an audited admin bypass, read models kept
// live by projections, and the scripted scenario that the commands
// ./examples/bank (the embedded store) and ./examples/bank/nats (NATS
// JetStream) both run, unchanged, through [Run].
package bank
