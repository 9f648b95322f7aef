"""The mnistlite prediction service: a Falcon WSGI app (``service.app.create_app``) run by gunicorn.

``service.wsgi:app`` loads the model named by ``MNISTLITE_MODEL``; ``service/gunicorn.conf.py``
holds the process settings (workers, bind address, metrics directory, one BLAS thread).
"""
