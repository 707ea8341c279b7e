;;; parex_test.el --- eglot against the real parex-lsp, in a headless Emacs  -*- lexical-binding: t -*-

;; Run by tests/clients/test_emacs.py:
;;
;;   PAREX_TEST_CONFIG=<the configuration block of docs/other-editors.md, as a file>
;;   PAREX_TEST_COMMAND_FORM=<the doc's `eglot-execute-command' example, as a file>
;;   PAREX_TEST_TEXT_MODE=<the doc's line that gives text-mode to parex-lsp, as a file>
;;   PAREX_TEST_WORKSPACE=<a folder whose parex.toml has a task "good" and a task "bad" that fails,
;;                         and whose notes.txt has the callN: lines call1, call2 (fails) and call3>
;;   PAREX_TEST_SERVER=<the parex-lsp that `parex-lsp' on PATH must resolve to>
;;   emacs --batch -l tests/clients/emacs/parex_test.el
;;
;; Everything goes through what the doc gives a user: its mode for plan files, eglot started on
;; it as by M-x eglot, M-x parex-run, M-x parex-show-log, the command form.  Prints "ok - ..."
;; lines on stdout; exits 0 when every check passed, 1 with "FAIL: reason" on stderr otherwise.

(require 'cl-lib)
(require 'subr-x)

(defconst parex-test-run-timeout 90 "Seconds a run of the test plan may take.")
(defconst parex-test-small-timeout 30 "Seconds for everything else to happen.")

(defun parex-test-out (fmt &rest args)
  (princ (concat (apply #'format fmt args) "\n")))

(defun parex-test-fail (fmt &rest args)
  (message "FAIL: %s" (apply #'format fmt args))
  (kill-emacs 1))

(defun parex-test-wait (seconds what pred)
  "Let process output in until PRED is non-nil, and return its value; fail after SECONDS.
WHAT names what is awaited: a string, or a function that says it at the time of failure."
  (let ((deadline (+ (float-time) seconds))
        value)
    (while (not (setq value (funcall pred)))
      (when (> (float-time) deadline)
        (parex-test-fail "timed out after %ss waiting for %s" seconds
                         (if (functionp what) (funcall what) what)))
      (accept-process-output nil 0.05))
    value))

(defun parex-test-env (name)
  (let ((value (getenv name)))
    (if (or (null value) (string-empty-p value))
        (parex-test-fail "%s is not set" name)
      value)))

(defun parex-test-line-of (regexp)
  "The 1-based line of the current buffer that matches REGEXP, found independently of eglot."
  (save-excursion
    (goto-char (point-min))
    (unless (re-search-forward regexp nil t)
      (parex-test-fail "no line matches %S in %s" regexp (buffer-file-name)))
    (line-number-at-pos)))

(defun parex-test-diags-at (line)
  "The Flymake diagnostics of the current buffer on LINE (1-based)."
  (save-excursion
    (goto-char (point-min))
    (forward-line (1- line))
    (flymake-diagnostics (line-beginning-position) (line-end-position))))

(defun parex-test-lsp-diag (diag)
  "The LSP Diagnostic object eglot keeps with the Flymake diagnostic DIAG."
  (alist-get 'eglot-lsp-diag (flymake-diagnostic-data diag)))

(defun parex-test-failure-diag (line run-id)
  "The Error that run RUN-ID left at LINE for the task `bad', if it has arrived."
  (cl-find-if (lambda (d)
                (let ((spec (parex-test-lsp-diag d)))
                  (and (string-match-p "bad failed" (flymake-diagnostic-text d))
                       (equal (plist-get (plist-get spec :data) :runId) run-id))))
              (parex-test-diags-at line)))

(defun parex-test-describe-diags ()
  (mapconcat (lambda (d)
               (format "line %d: %s" (line-number-at-pos (flymake-diagnostic-beg d))
                       (flymake-diagnostic-text d)))
             (flymake-diagnostics) "; "))

(defun parex-test-read-forms (file)
  "The forms of FILE, read as `load' would read them."
  (with-temp-buffer
    (insert-file-contents file)
    (goto-char (point-min))
    (let (forms)
      (condition-case nil
          (while t (push (read (current-buffer)) forms))
        (end-of-file nil))
      (nreverse forms))))

(defun parex-test-run ()
  (let* ((workspace (file-name-as-directory (parex-test-env "PAREX_TEST_WORKSPACE")))
         (plan-file (expand-file-name "parex.toml" workspace))
         plan-buffer server bad-line good-line result run-id)

    ;; 1. The configuration block of the doc, loaded as a user's init file would load it.
    (load (parex-test-env "PAREX_TEST_CONFIG") nil t t)
    (unless (fboundp 'parex-run)
      (parex-test-fail "the configuration did not define parex-run"))
    (parex-test-out "ok - loaded the Emacs configuration of docs/other-editors.md (eglot %s, Emacs %s)"
                    (or (bound-and-true-p eglot--version)
                        (file-name-nondirectory (directory-file-name
                                                 (file-name-directory (locate-library "eglot")))))
                    emacs-version)

    ;; 2. Plan files, and only they, get the plan mode.
    (dolist (case '(("/w/parex.toml" . t) ("/w/api.parex.toml" . t)
                    ("/w/pyproject.toml" . nil) ("/w/notparex.toml" . nil)))
      (let ((mode (assoc-default (car case) auto-mode-alist #'string-match)))
        (unless (eq (eq mode 'parex-plan-mode) (cdr case))
          (parex-test-fail "auto-mode-alist gives %s the mode %s" (car case) mode))))
    (setq plan-buffer (find-file plan-file))
    (unless (eq major-mode 'parex-plan-mode)
      (parex-test-fail "%s opened in %s, not parex-plan-mode" plan-file major-mode))
    (parex-test-out "ok - parex.toml and *.parex.toml open in parex-plan-mode, other TOML files do not")

    ;; 3. M-x eglot: the server of eglot-server-programs, found on PATH.
    ;; (Checked first: for a program it cannot find, eglot would prompt for another one.)
    (let* ((contact (alist-get 'parex-plan-mode eglot-server-programs))
           (found (and (stringp (car-safe contact)) (executable-find (car contact))))
           (wanted (parex-test-env "PAREX_TEST_SERVER")))
      (unless (and found (file-equal-p found wanted))
        (parex-test-fail "eglot-server-programs gives parex-plan-mode %S, found as %s, not %s"
                         contact found wanted)))
    (call-interactively #'eglot)
    (setq server (parex-test-wait parex-test-small-timeout "eglot to connect to parex-lsp"
                                  (lambda () (with-current-buffer plan-buffer
                                               (and (bound-and-true-p eglot--managed-mode)
                                                    (eglot-current-server))))))
    (let ((command (process-command (jsonrpc--process server))))
      (unless (equal (cdr command) '("--stdio"))
        (parex-test-fail "eglot started %S" command))
      (parex-test-out "ok - M-x eglot started %s and manages the plan buffer"
                      (string-join command " ")))
    (unless (bound-and-true-p flymake-mode)
      (parex-test-fail "eglot did not turn on Flymake in the plan buffer"))

    ;; 4. M-x parex-run: the RunResult comes back through jsonrpc.
    (setq bad-line (parex-test-line-of "^id = \"bad\"")
          good-line (parex-test-line-of "^id = \"good\""))
    (call-interactively #'parex-run)
    (setq result (parex-test-wait parex-test-run-timeout "the RunResult of M-x parex-run"
                                  (lambda () parex-last-result)))
    (setq run-id (plist-get result :runId))
    (let ((statuses (mapcar (lambda (task) (cons (plist-get task :id) (plist-get task :status)))
                            (plist-get result :tasks))))
      (unless (and (equal (plist-get result :status) "failed")
                   (equal (assoc-default "good" statuses) "succeeded")
                   (equal (assoc-default "bad" statuses) "failed"))
        (parex-test-fail "RunResult %S" result))
      (parex-test-out "ok - M-x parex-run: run %s failed (good succeeded, bad failed)" run-id))

    ;; 5. The failure diagnostic, through eglot into Flymake, at the failed task's id line.
    (let ((diag (parex-test-wait parex-test-small-timeout
                                 (lambda ()
                                   (with-current-buffer plan-buffer
                                     (format "the failure of bad in Flymake at line %d (have: %s)"
                                             bad-line (parex-test-describe-diags))))
                                 (lambda () (with-current-buffer plan-buffer
                                              (parex-test-failure-diag bad-line run-id))))))
      (with-current-buffer plan-buffer
        (let ((text (flymake-diagnostic-text diag))
              (spec (parex-test-lsp-diag diag)))
          (unless (eq (get (flymake-diagnostic-type diag) 'flymake-category) 'flymake-error)
            (parex-test-fail "the diagnostic is a %s, not an error" (flymake-diagnostic-type diag)))
          (unless (and (equal (plist-get spec :source) "parex")
                       (equal (plist-get spec :code) "exit-code")
                       (string-match-p "bad-task-output-marker" text))
            (parex-test-fail "diagnostic %S (%S)" text spec))
          (when (parex-test-diags-at good-line)
            (parex-test-fail "a diagnostic on the succeeded task: %s" (parex-test-describe-diags)))
          (parex-test-out "ok - Flymake error on parex.toml line %d: %s" bad-line
                          (car (split-string text "\n"))))))

    ;; 6. The code actions of that diagnostic.
    (with-current-buffer plan-buffer
      (let* ((diag (parex-test-failure-diag bad-line run-id))
             (spec (parex-test-lsp-diag diag))
             (actions (jsonrpc-request server :textDocument/codeAction
                                       (list :textDocument (eglot--TextDocumentIdentifier)
                                             :range (plist-get spec :range)
                                             :context (list :diagnostics (vector spec)))))
             (titles (mapcar (lambda (a) (plist-get a :title)) actions)))
        (unless (and (cl-some (lambda (title) (string-match-p "Retry" title)) titles)
                     (cl-some (lambda (title) (string-match-p "log" title)) titles))
          (parex-test-fail "code actions on the failure: %S" titles))
        (parex-test-out "ok - code actions on the failure: %s" (string-join titles ", "))))

    ;; 7. M-x parex-show-log bad: the task's log, in another window.
    (with-current-buffer plan-buffer
      (parex-show-log "bad"))
    (let ((log-buffer (window-buffer (selected-window))))
      (unless (and (buffer-file-name log-buffer)
                   (string-suffix-p "bad.log" (buffer-file-name log-buffer))
                   (with-current-buffer log-buffer
                     (save-excursion (goto-char (point-min))
                                     (search-forward "bad-task-output-marker" nil t))))
        (parex-test-fail "parex-show-log showed %S" log-buffer))
      (unless (get-buffer-window plan-buffer)
        (parex-test-fail "the log replaced the plan's window instead of taking another one"))
      (parex-test-out "ok - M-x parex-show-log bad opened %s in another window"
                      (file-name-nondirectory (buffer-file-name log-buffer))))

    ;; 8. The command form of the doc (workspace/executeCommand parex.run, detached).
    (let* ((answer (with-current-buffer plan-buffer
                     (let (value)
                       (dolist (form (parex-test-read-forms (parex-test-env "PAREX_TEST_COMMAND_FORM")))
                         (setq value (eval form t)))
                       value)))
           (second-run (plist-get answer :runId)))
      (unless (and (stringp second-run) (not (equal second-run run-id)))
        (parex-test-fail "parex.run with detach answered %S" answer))
      (parex-test-wait parex-test-run-timeout
                       (format "the failure of bad from the detached run %s in Flymake" second-run)
                       (lambda () (with-current-buffer plan-buffer
                                    (parex-test-failure-diag bad-line second-run))))
      (parex-test-out "ok - workspace/executeCommand parex.run (detach) ran %s; its failure reached line %d"
                      second-run bad-line))

    ;; 9. callN: lines of a text file: the doc's text-mode line, M-x eglot there, select the
    ;; lines of call1 and call2 (up to the start of call3's line, which the run must not take)
    ;; and M-x parex-run.
    (load (parex-test-env "PAREX_TEST_TEXT_MODE") nil t t)
    (let ((notes-buffer (find-file (expand-file-name "notes.txt" workspace)))
          notes-server call2-line)
      (unless (eq major-mode 'text-mode)
        (parex-test-fail "notes.txt opened in %s" major-mode))
      (setq parex-last-result nil)
      (call-interactively #'eglot)
      (setq notes-server (parex-test-wait parex-test-small-timeout "eglot to start parex-lsp for text-mode"
                                          (lambda () (with-current-buffer notes-buffer
                                                       (and (bound-and-true-p eglot--managed-mode)
                                                            (eglot-current-server))))))
      (setq call2-line (parex-test-line-of "^call2:"))
      (transient-mark-mode 1)
      (goto-char (point-min))
      (forward-line (1- (parex-test-line-of "^call1:")))
      (push-mark (point) t t)
      (forward-line (1+ (- call2-line (line-number-at-pos))))
      (unless (looking-at "call3:")
        (parex-test-fail "the region should end at the start of call3's line"))
      (call-interactively #'parex-run)
      (let* ((result (parex-test-wait parex-test-run-timeout "the RunResult of the region's run"
                                      (lambda () parex-last-result)))
             (statuses (mapcar (lambda (task) (cons (plist-get task :id) (plist-get task :status)))
                               (plist-get result :tasks))))
        (unless (equal statuses '(("call1" . "succeeded") ("call2" . "failed")))
          (parex-test-fail "the region's run ran %S" statuses))
        (parex-test-wait parex-test-small-timeout
                         (lambda () (with-current-buffer notes-buffer
                                      (format "the failure of call2 at notes.txt line %d (have: %s)"
                                              call2-line (parex-test-describe-diags))))
                         (lambda () (with-current-buffer notes-buffer
                                      (cl-find-if (lambda (d) (string-match-p "call2 failed"
                                                                              (flymake-diagnostic-text d)))
                                                  (parex-test-diags-at call2-line)))))
        (parex-test-out "ok - M-x parex-run on a region of notes.txt ran call1 and call2 only; call2's failure at line %d"
                        call2-line))
      (eglot-shutdown notes-server))

    (eglot-shutdown server)
    (parex-test-out "ok - all checks passed")))

(condition-case err
    (progn (parex-test-run) (kill-emacs 0))
  (error (parex-test-fail "%s" (error-message-string err))))

;;; parex_test.el ends here
