import TokenCredentials

/// A client is a `TokenCredential`, so libraries that take any credential take it, and the
/// middleware of the `AuthenticatedHTTP` product authenticates requests with it.
extension ManagedIdentityClient: TokenCredential {
    /// Gets a token for the one scope of `context`, from the cache when it holds a usable one.
    ///
    /// Claims (from a resource's challenge) skip the cached token, as ``TokenRequestOptions/claims``
    /// does; the tenant is ignored, since a managed identity belongs to one tenant.
    /// - Throws: ``ManagedIdentityError`` (`invalid_resource` when `context` has no scope or more
    ///   than one), or `CancellationError` when the task is cancelled.
    public func token(for context: TokenRequestContext) async throws -> AccessTokenInfo {
        let token = try await token(
            for: try Self.scope(of: context),
            options: TokenRequestOptions(claims: context.claims, correlationID: context.correlationID))
        return AccessTokenInfo(token: token.token, expiresOn: token.expiresOn, refreshOn: token.refreshOn, tokenType: token.tokenType)
    }

    /// The one scope of `context`: a managed identity token is for one resource.
    static func scope(of context: TokenRequestContext) throws(ManagedIdentityError) -> String {
        guard context.scopes.count == 1, let scope = context.scopes.first else {
            throw ManagedIdentityError(
                code: .invalidResource,
                message: "A managed identity token is for one resource, and \(context.scopes.count) scopes were asked for. "
                    + "Ask for each resource's scope on its own.")
        }
        return scope
    }
}

/// A managed identity error says whether the identity cannot be had on this host at all.
extension ManagedIdentityError: TokenCredentialError {
    /// True when no managed identity endpoint answers here (`managed_identity_unreachable_network`)
    /// or a named source's variables are missing (`missing_managed_identity_env_var`).
    public var credentialIsUnavailable: Bool {
        code == .unreachableNetwork || code == .missingEnvironmentVariable
    }
}
