// Start Swagger UI on /docs. A file rather than the inline script FastAPI's default page uses,
// so the page runs under a Content-Security-Policy without 'unsafe-inline'.
"use strict";

window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({
    // Relative to /docs, so a proxy's path prefix is kept.
    url: new URL("openapi.json", window.location.href).toString(),
    dom_id: "#swagger-ui",
    deepLinking: true,
    // The default would show a badge image from validator.swagger.io: nothing may come from outside.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
