// The signed-in token (this tab's sessionStorage only) and calls to the /v1 API with it.
// Refusals become ApiError with the problem+json detail, so pages can say why.

const TOKEN_KEY = "taskgate.token";

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }
}

export function currentToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function keepToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

// Everything this tab kept: the token, the event cursor and the throughput counts.
export function forgetSession() {
  sessionStorage.clear();
}

// The token's claims for display only: the API verifies it, the dashboard never trusts it.
export function tokenClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch {
    return {};
  }
}

export function authHeaders(token = currentToken()) {
  return { Authorization: `Bearer ${token}` };
}

// Calls the API; resolves to the JSON body, rejects with ApiError (or a network TypeError).
export async function api(path, { method = "GET", body, token = currentToken() } = {}) {
  // Signed out (or sent back to sign-in): the pages' timers must not keep calling.
  if (!token) throw new ApiError(401, "Signed out", "no token");
  const headers = { ...authHeaders(token), Accept: "application/json" };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      // Not problem+json (a proxy's page): the status says enough.
    }
    throw new ApiError(response.status, problem.title, problem.detail);
  }
  return response.status === 204 ? null : response.json();
}

// A sentence for a refused action: what was tried and what the API said.
export function refusalMessage(error, action) {
  if (error instanceof ApiError) {
    if (error.status === 401) {
      return `Your token was not accepted (expired or invalid): sign in again to ${action}.`;
    }
    if (error.status === 403) {
      return `Not allowed to ${action}: ${error.detail || "your token lacks the scope for it"}.`;
    }
    if (error.status === 429) {
      return `Too many requests: wait a moment, then ${action} again.`;
    }
    return `Could not ${action}: ${error.detail || error.title || `HTTP ${error.status}`}.`;
  }
  return `Could not ${action}: the server did not answer (${error.message}).`;
}
