// Calls to the prodgen API. When the server asks for an API key (a 401), the page asks the user for it
// once, keeps it for this browser tab (sessionStorage) and sends it as X-API-Key with every call.

const KEY_ITEM = "prodgen-api-key";
let apiKey = sessionStorage.getItem(KEY_ITEM);
let pendingKey = null; // one question at a time, however many calls were refused together

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** fetch(path) with the key; `json` is sent as a JSON body, `form` (FormData) as multipart. */
export async function call(path, { json, form } = {}) {
  for (;;) {
    const headers = apiKey ? { "X-API-Key": apiKey } : {};
    if (json) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method: json || form ? "POST" : "GET",
      headers,
      body: json ? JSON.stringify(json) : form,
    });
    if (response.status === 401) {
      await askForKey(apiKey !== null);
      continue;
    }
    if (!response.ok) throw new ApiError(await errorMessage(response), response.status);
    return response;
  }
}

export async function callJson(path, options) {
  return (await call(path, options)).json();
}

async function errorMessage(response) {
  try {
    return (await response.json()).error ?? response.statusText;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

function askForKey(wasWrong) {
  pendingKey ??= new Promise((resolve, reject) => {
    const dialog = document.getElementById("key-dialog");
    const form = dialog.querySelector("form");
    dialog.querySelector("#key-problem").textContent = wasWrong ? "That key was not accepted: check it and try again." : "";
    const finish = () => {
      form.removeEventListener("submit", accept);
      dialog.removeEventListener("cancel", refuse);
      pendingKey = null;
    };
    const accept = () => {
      apiKey = form.elements.key.value.trim();
      sessionStorage.setItem(KEY_ITEM, apiKey);
      form.reset();
      finish();
      resolve();
    };
    const refuse = () => {
      finish();
      reject(new ApiError("This server needs an API key.", 401));
    };
    form.addEventListener("submit", accept);
    dialog.addEventListener("cancel", refuse);
    dialog.showModal();
  });
  return pendingKey;
}
