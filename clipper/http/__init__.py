"""HTTP plumbing shared by every port: the lean HTTP/1.1 server of the query port (`http11`),
the uvicorn host of the ASGI apps (`uvicorn_host`), CORS, the event-loop poller and the one
table from exceptions to HTTP and gRPC statuses and error codes (`errors`)."""
