// verification.after: which addresses are verified now.
// Only the four address fields kratos-orgs reads: never forward cookies or headers.
local addresses(identity) = [
  { value: a.value, via: a.via, verified: a.verified, status: a.status }
  for a in (if std.objectHas(identity, "verifiable_addresses") && identity.verifiable_addresses != null then identity.verifiable_addresses else [])
];
function(ctx) {
  flow_id: ctx.flow.id,
  identity_id: ctx.identity.id,
  verifiable_addresses: addresses(ctx.identity),
}
