// registration.after (post-persist): the identity exists now, with its id.
// Kratos evaluates bodies in a sandbox without imports, so each file
// carries the helpers it needs. transient_payload lives at
// ctx.flow.transient_payload and may be absent or null.
local payload(ctx) = if std.objectHas(ctx.flow, "transient_payload") && std.isObject(ctx.flow.transient_payload) then ctx.flow.transient_payload else {};
local field(o, k) = if std.objectHas(o, k) then o[k] else null;
// Only the four address fields kratos-orgs reads: never forward cookies or headers.
local addresses(identity) = [
  { value: a.value, via: a.via, verified: a.verified, status: a.status }
  for a in (if std.objectHas(identity, "verifiable_addresses") && identity.verifiable_addresses != null then identity.verifiable_addresses else [])
];
function(ctx) {
  flow_id: ctx.flow.id,
  identity_id: ctx.identity.id,
  traits: ctx.identity.traits,
  verifiable_addresses: addresses(ctx.identity),
  invite_token: field(payload(ctx), "invite_token"),
  organization_name: field(payload(ctx), "organization_name"),
}
