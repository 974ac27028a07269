/// The scopes of Azure services, by the host names their endpoints have in the public cloud.
enum AzureServiceScopes {
    /// Host suffixes (each with its leading dot) and exact hosts, to the service's scope.
    private static let bySuffix: [(suffix: String, scope: String)] = [
        (".vault.azure.net", "https://vault.azure.net/.default"),
        (".managedhsm.azure.net", "https://managedhsm.azure.net/.default"),
        (".blob.core.windows.net", "https://storage.azure.com/.default"),
        (".queue.core.windows.net", "https://storage.azure.com/.default"),
        (".table.core.windows.net", "https://storage.azure.com/.default"),
        (".file.core.windows.net", "https://storage.azure.com/.default"),
        (".dfs.core.windows.net", "https://storage.azure.com/.default"),
        (".servicebus.windows.net", "https://servicebus.azure.net/.default"),
        (".documents.azure.com", "https://cosmos.azure.com/.default"),
        (".database.windows.net", "https://database.windows.net/.default"),
        (".azconfig.io", "https://azconfig.io/.default"),
        (".search.windows.net", "https://search.azure.com/.default"),
        (".cognitiveservices.azure.com", "https://cognitiveservices.azure.com/.default"),
        (".openai.azure.com", "https://cognitiveservices.azure.com/.default"),
    ]

    private static let byHost: [String: String] = [
        "management.azure.com": "https://management.azure.com/.default",
        "graph.microsoft.com": "https://graph.microsoft.com/.default",
    ]

    /// The scope for `host`, or `nil` when it is not a known Azure service's.
    static func scope(forHost host: String) -> String? {
        let host = host.lowercased()
        if let scope = byHost[host] { return scope }
        return bySuffix.first { host.hasSuffix($0.suffix) && host.count > $0.suffix.count }?.scope
    }
}
