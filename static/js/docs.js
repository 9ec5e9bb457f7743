// /docs: Swagger UI (vendored, loaded just before this file) on the API's description,
// whose address the page gives in data-openapi-url (it knows the app's root path).
// A file of its own, not an inline script, so that a Content-Security-Policy can forbid those.
"use strict";

(() => {
  const root = document.getElementById("swagger-ui");
  if (!root || typeof SwaggerUIBundle !== "function") return;  // the <noscript> text stays
  SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    deepLinking: false,  // an operation's path as a link nests a link in its button
    validatorUrl: null,  // no call to swagger.io's online validator: nothing from the internet
    // Swagger UI draws its operations in a <main> of its own, inside the page's: a second
    // main landmark. Once drawn, it becomes a named region of the page's main.
    onComplete: () => {
      const operations = document.getElementById("operations");
      if (operations) {
        operations.setAttribute("role", "region");
        operations.setAttribute("aria-label", "Operations");
      }
    },
  });
})();
