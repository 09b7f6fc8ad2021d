import { useId, type ReactElement } from "react";

/**
 * A form field with a label (visually hidden, as in Conduit's design, where the
 * placeholder shows) and the API's messages for it right below the input.
 */
export function Field({
  label,
  errors,
  field,
  children,
}: {
  label: string;
  /** Messages for this field from the API, e.g. ["has already been taken"]. */
  errors?: string[] | undefined;
  field: string;
  children: (props: {
    id: string;
    "aria-invalid": boolean;
    "aria-describedby": string | undefined;
    className: string;
  }) => ReactElement;
}) {
  const id = useId();
  const errorId = `${id}-error`;
  const invalid = errors !== undefined && errors.length > 0;
  return (
    <fieldset className="form-group">
      <label htmlFor={id} className="sr-only">
        {label}
      </label>
      {children({
        id,
        "aria-invalid": invalid,
        "aria-describedby": invalid ? errorId : undefined,
        className: `form-control${invalid ? " is-invalid" : ""}`,
      })}
      {invalid && (
        <div id={errorId} className="invalid-feedback" data-field={field}>
          {field} {errors.join(", ")}
        </div>
      )}
    </fieldset>
  );
}
